/**
 * `{uid}`, `{user}` and `{env.NAME}` in config values: per-user stores on $SCRATCH are the common HPC
 * layout, so one site file must describe every user's store.
 */
export interface TemplateContext {
  readonly uid: number;
  readonly user: string;
  readonly env: Readonly<Record<string, string | undefined>>;
}

export class TemplateError extends Error {}

export function expandTemplates(value: string, context: TemplateContext): string {
  return value.replace(/\{([^{}]*)\}/g, (match, name: string) => {
    if (name === `uid`)
      return String(context.uid);
    if (name === `user`)
      return context.user;
    if (name.startsWith(`env.`)) {
      const variable = name.slice(4);
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(variable))
        throw new TemplateError(`${match} is not a valid environment variable name`);
      const resolved = context.env[variable];
      if (resolved === undefined || resolved === ``)
        throw new TemplateError(`${match} needs $${variable}, which is not set`);
      return resolved;
    }
    throw new TemplateError(`unknown template ${match} (known: {uid}, {user}, {env.NAME})`);
  });
}
