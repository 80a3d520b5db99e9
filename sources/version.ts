declare const __PCLUSTER_VERSION__: string | undefined;

/** Set by the build from package.json; a run from unbuilt sources (unit tests) says so. */
export const PCLUSTER_VERSION: string = typeof __PCLUSTER_VERSION__ === `string` ? __PCLUSTER_VERSION__ : `0.0.0-dev`;
