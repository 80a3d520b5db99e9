import {join} from 'node:path';
import {execa} from 'execa';

/**
 * The podman versions the suite and the start bench run on ("legs"): this machine's own podman, and
 * throwaway Debian roots with newer ones (test/matrix/root builds them, test/matrix/enter runs a
 * command inside one as a machine of its own).
 */
export const LEGS = [`host`, `trixie`, `sid`] as const;
export type Leg = typeof LEGS[number];

const REPO = new URL(`../../`, import.meta.url).pathname.replace(/\/$/, ``);
const MATRIX = join(REPO, `test`, `matrix`);

/** Legs named in `selection` (comma-separated), checked against LEGS. */
export function parseLegs(selection: string): Leg[] {
  const legs = selection.split(`,`).map(name => name.trim()).filter(Boolean);
  for (const leg of legs) {
    if (!(LEGS as readonly string[]).includes(leg))
      throw new Error(`unknown leg ${JSON.stringify(leg)} (legs: ${LEGS.join(`, `)})`);
  }
  return legs as Leg[];
}

/**
 * How to run `command` (argv, in the checkout) on a leg, and which podman the leg has. In a root leg
 * the leg's own Node first trains the code cache (V8 takes only its own version's).
 */
export async function legCommand(leg: Leg, command: readonly string[]): Promise<{file: string, args: string[], podman: string}> {
  if (leg === `host`) {
    const podman = (await execa(`podman`, [`--version`], {reject: false})).stdout.trim().replace(/^podman version /, `podman `) || `podman not found`;
    return {file: command[0]!, args: command.slice(1), podman};
  }
  const root = (await execa(join(MATRIX, `root`), [leg], {stderr: `inherit`})).stdout.trim();
  const version = (await execa(`chroot`, [root, `dpkg-query`, `--show`, `--showformat=\${Version}`, `podman`], {reject: false})).stdout.trim();
  const podman = version ? `podman ${version} (Debian ${leg})` : `podman not found`;
  return {file: join(MATRIX, `enter`), args: [root, `sh`, `-c`, `node scripts/build.mjs >&2 && exec "$@"`, `sh`, ...command], podman};
}
