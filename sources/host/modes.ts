/**
 * Mode bits as trust checks read them (stores, config files): like ssh's StrictModes, what matters is
 * whether anyone but the owner can write.
 */
export function othersWhoCanWrite(mode: number): `everyone` | `its group` | null {
  if ((mode & 0o002) !== 0)
    return `everyone`;
  return (mode & 0o020) !== 0 ? `its group` : null;
}

/** The permission bits as `ls -l` users read them in messages: `777`, `2775`. */
export function octalMode(mode: number): string {
  return (mode & 0o7777).toString(8);
}
