import {UserError} from '../errors.js';

/**
 * Where pcluster runs from. The shim resolves the real podman (never a shim) and opens the
 * descriptor the run decision goes to; Node started any other way has neither.
 */
export interface Launch {
  readonly podman: string;
  readonly execFd: number;
  readonly invokedAs: `podman` | `pcluster`;
}

export function launchFromEnv(env: NodeJS.ProcessEnv): Launch {
  const podman = env.PCLUSTER_PODMAN;
  const execFd = Number(env.PCLUSTER_EXEC_FD);
  if (!podman || !Number.isInteger(execFd) || execFd < 3)
    throw new UserError(`start pcluster through its shim (shims/pcluster), not with node directly`);
  return {podman, execFd, invokedAs: env.PCLUSTER_INVOKED_AS === `podman` ? `podman` : `pcluster`};
}
