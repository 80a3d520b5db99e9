/**
 * First words that are pcluster's, not podman's (none of them is a podman command). The shims keep
 * the same list to decide when Node must start (shims/pcluster: PCLUSTER_COMMANDS).
 */
export const OWN_COMMANDS: ReadonlySet<string> = new Set([`doctor`, `install-shims`, `migrate`, `store`]);
