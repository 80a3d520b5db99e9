import {access, constants} from 'node:fs/promises';
import {resolve} from 'node:path';

import {checkStorePath} from '../config/load.js';
import type {Config} from '../config/schema.js';
import {UserError} from '../errors.js';

/** The store a store command works on: `--store PATH`, else the first configured writable one. */
export async function selectStore(config: Config, explicit: string | undefined): Promise<string> {
  if (explicit !== undefined)
    return checkStorePath(resolve(explicit), `--store`);
  const candidates = config.stores.filter(store => !store.readOnly);
  for (const store of candidates) {
    if (await isWritable(store.path))
      return store.path;
  }
  if (config.stores.length === 0)
    throw new UserError(`no store given: pass --store PATH or configure one (PCLUSTER_STORE, stores in a config file)`);
  throw new UserError(`none of the configured stores is writable (${config.stores.map(store => store.path).join(`, `)}); pass --store PATH`);
}

async function isWritable(path: string): Promise<boolean> {
  try {
    await access(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}
