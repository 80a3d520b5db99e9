import {UserError} from '../errors.js';

/**
 * Image references as podman accepts them, parsed into what pcluster needs to find an image in a
 * store without asking podman (which costs a process start on the run path).
 */
export type ImageReference =
  | {readonly kind: `id`, readonly id: string}
  | {readonly kind: `name`, readonly domain: string | null, readonly path: string, readonly tag: string | null, readonly digest: string | null}
  | {readonly kind: `transport`, readonly transport: string, readonly rest: string};

const TRANSPORTS = [`docker`, `docker-archive`, `docker-daemon`, `oci`, `oci-archive`, `dir`, `containers-storage`, `sif`] as const;
const MAX_REFERENCE = 4096;
const COMPONENT = `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`;
const DOMAIN = `(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?`;
const NAME = new RegExp(`^(?:(${DOMAIN})/)?(${COMPONENT}(?:/${COMPONENT})*)(?::([\\w][\\w.-]{0,127}))?(?:@(sha256:[0-9a-f]{64}))?$`);

export function parseImageReference(raw: string): ImageReference {
  const shown = JSON.stringify(raw.length > 80 ? `${raw.slice(0, 80)}...` : raw);
  if (raw === ``)
    throw new UserError(`image reference is empty`);
  if (raw.length > MAX_REFERENCE)
    throw new UserError(`image reference ${shown} is longer than ${MAX_REFERENCE} characters`);
  if (/[\u0000-\u001f\u007f]/.test(raw))
    throw new UserError(`image reference ${shown} contains control characters`);
  if (raw.startsWith(`-`))
    throw new UserError(`image reference ${shown} looks like an option`);

  const transport = /^([a-z-]+):(.*)$/s.exec(raw);
  if (transport && (TRANSPORTS as readonly string[]).includes(transport[1]!) && !/^\d/.test(transport[2]!)) {
    if (transport[2] === `` || transport[2] === `//`)
      throw new UserError(`image reference ${shown} names a transport but no image`);
    return {kind: `transport`, transport: transport[1]!, rest: transport[2]!};
  }
  const id = /^(?:sha256:)?([0-9a-f]{12,64})$/.exec(raw);
  if (id && (raw.startsWith(`sha256:`) ? id[1]!.length === 64 : true))
    return {kind: `id`, id: id[1]!};

  const match = NAME.exec(raw);
  if (!match)
    throw new UserError(`image reference ${shown} is not a valid image name`);
  let [, domain = null, path] = match;
  const [, , , tag = null, digest = null] = match;
  // docker.io's own rule: a first component without a dot, colon or "localhost" is a path, not a host.
  if (domain !== null && !/[.:]/.test(domain) && domain !== `localhost`) {
    if (!new RegExp(`^${COMPONENT}$`).test(domain))
      throw new UserError(`image reference ${shown} is not a valid image name`);
    path = `${domain}/${path}`;
    domain = null;
  }
  return {kind: `name`, domain, path: path!, tag, digest};
}

/** The tag podman assumes: `latest` unless a tag or a digest is given. */
function effectiveTag(reference: Extract<ImageReference, {kind: `name`}>): string | null {
  return reference.tag ?? (reference.digest === null ? `latest` : null);
}

/**
 * Whether a stored image name (always fully qualified, `domain/path:tag`) is what `reference` means
 * when podman resolves it against local storage: exact when a domain is given; otherwise any domain,
 * with docker.io's implicit `library/`.
 */
export function nameMatches(reference: ImageReference, storedName: string): boolean {
  if (reference.kind !== `name`)
    return false;
  const tag = effectiveTag(reference);
  if (tag === null)
    return false; // Digest references are matched by source digest, not by name.
  const slash = storedName.indexOf(`/`);
  if (slash < 0)
    return false;
  const storedDomain = storedName.slice(0, slash);
  const storedRest = storedName.slice(slash + 1);
  if (reference.domain !== null)
    return storedDomain === reference.domain && storedRest === `${reference.path}:${tag}`;
  return storedRest === `${reference.path}:${tag}`
    || (storedDomain === `docker.io` && storedRest === `library/${reference.path}:${tag}`);
}

/** The repository part of a stored name (`domain/path`), to match a `name@digest` reference. */
export function repositoryMatches(reference: ImageReference, storedName: string): boolean {
  if (reference.kind !== `name`)
    return false;
  const repository = storedName.replace(/:[^/:]+$/, ``);
  if (reference.domain !== null)
    return repository === `${reference.domain}/${reference.path}`;
  return repository.endsWith(`/${reference.path}`) || repository === `docker.io/library/${reference.path}`;
}

/** Short names (no domain) are resolved by podman: local storage first, then search registries. */
export function isShortName(reference: ImageReference): boolean {
  return reference.kind === `name` && reference.domain === null;
}
