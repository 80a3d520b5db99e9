import {Command, Option} from 'clipanion';

import type {PclusterContext} from './context.js';

/**
 * The registry-access options of podman pull, for the commands that pull or ask a registry (migrate,
 * store refresh): declared once, turned into podman's tokens by migrate/registry.ts.
 */
export abstract class RegistryAccessCommand extends Command<PclusterContext> {
  tlsVerify = Option.String(`--tls-verify`, {tolerateBoolean: true, description: `require HTTPS and verify certificates when asking registries (default true)`});
  authfile = Option.String(`--authfile`, {description: `registry credentials file, as podman pull's`});
  creds = Option.String(`--creds`, {description: `registry credentials USER[:PASSWORD], as podman pull's`});
  certDir = Option.String(`--cert-dir`, {description: `directory of registry certificates, as podman pull's`});
}
