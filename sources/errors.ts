/**
 * An error meant for the user: printed as one `pcluster: ...` line, no stack trace.
 * The exit code follows podman's conventions (125 = the tool itself failed).
 */
export class UserError extends Error {
  constructor(message: string, readonly exitCode: number = EXIT_PODMAN_ERROR) {
    super(message);
    this.name = `UserError`;
  }
}

/** podman's exit code when podman itself (not the container) fails. */
export const EXIT_PODMAN_ERROR = 125;
/** podman's exit code when the command cannot be invoked / is not found. */
export const EXIT_NOT_FOUND = 127;

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
