import {createHash} from 'node:crypto';

import {failureLine, runAbandonable} from '../child.js';
import {UserError} from '../errors.js';
import {findTool} from '../host/facts.js';

/**
 * What a registry says a tag is now, without pulling it: the digest of the manifest the tag names
 * (skopeo fetches that one document; the digest is its SHA-256, as podman records it for what it
 * pulled). A multi-architecture tag answers with its list's digest, which is also what podman records.
 */

/** The podman registry-access options skopeo spells the same way. */
const SKOPEO_ACCESS_OPTIONS = new Set([`--tls-verify`, `--authfile`, `--creds`, `--cert-dir`]);

/** A registry that does not answer within this is "not reachable": a refresh never hangs a job. */
const REGISTRY_SECONDS = 60;

export async function registryDigest(name: string, accessOptions: readonly string[]): Promise<string> {
  if (await findTool(`skopeo`) === null)
    throw new UserError(`skopeo is not installed: cannot ask the registry what ${name} is now (install skopeo)`);
  const outcome = await runAbandonable(`skopeo`, [`inspect`, `--raw`, ...skopeoOptions(accessOptions), `docker://${name}`], {seconds: REGISTRY_SECONDS});
  if (outcome === `timeout`)
    throw new UserError(`the registry of ${name} did not answer within ${REGISTRY_SECONDS} s`);
  if (outcome.exitCode !== 0)
    throw new UserError(`cannot ask the registry what ${name} is now: ${failureLine(outcome)}`);
  // The manifest is JSON, hence UTF-8: decoding and encoding it again gives back its exact bytes.
  return `sha256:${createHash(`sha256`).update(Buffer.from(outcome.stdout, `utf8`)).digest(`hex`)}`;
}

export interface RegistryAccess {
  readonly tlsVerify?: string | boolean | undefined;
  readonly authfile?: string | undefined;
  readonly creds?: string | undefined;
  readonly certDir?: string | undefined;
}

/** The registry-access options given, as podman pull's tokens (the migration's pull and skopeo take them). */
export function registryOptions(options: RegistryAccess): string[] {
  const tokens: string[] = [];
  if (options.tlsVerify !== undefined)
    tokens.push(`--tls-verify=${options.tlsVerify === true ? `true` : options.tlsVerify}`);
  if (options.authfile !== undefined)
    tokens.push(`--authfile`, options.authfile);
  if (options.creds !== undefined)
    tokens.push(`--creds`, options.creds);
  if (options.certDir !== undefined)
    tokens.push(`--cert-dir`, options.certDir);
  return tokens;
}

/** podman's `--tls-verify=false`, `--authfile F`, `--creds U:P`, `--cert-dir D` tokens, kept for skopeo. */
export function skopeoOptions(tokens: readonly string[]): string[] {
  const kept: string[] = [];
  for (let index = 0; index < tokens.length; index++) {
    const token = tokens[index]!;
    const name = token.split(`=`)[0]!;
    if (!SKOPEO_ACCESS_OPTIONS.has(name))
      continue;
    if (token.includes(`=`) || name === `--tls-verify`) {
      kept.push(token);
    } else if (index + 1 < tokens.length) {
      kept.push(token, tokens[index + 1]!);
      index++;
    }
  }
  return kept;
}
