/**
 * First words that are pcluster's, not podman's (none of them is a podman command). The shims keep
 * the same list to decide when Node must start (shims/pcluster: PCLUSTER_COMMANDS).
 */
export const OWN_COMMANDS: ReadonlySet<string> = new Set([`doctor`, `install-shims`, `migrate`, `prefetch`, `store`]);

/**
 * podman's words that mean pcluster's command when invoked as `pcluster` (`podman completion` stays
 * podman's through the PATH shim). The shim sends them to Node for `pcluster` only.
 */
export const OWN_AS_PCLUSTER: ReadonlySet<string> = new Set([`completion`]);

/** cobra's completion request word; pcluster answers it when invoked as pcluster (the shim knows). */
export const COMPLETE = `__complete`;

/** The command that must never fail (main.ts): it runs in job prologs. */
export const PREFETCH = `prefetch`;
