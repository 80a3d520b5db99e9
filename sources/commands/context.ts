import type {BaseContext} from 'clipanion';

import type {Config} from '../config/schema.js';
import type {PodmanArgv} from '../podman/argv.js';
import type {Launch} from '../podman/launch.js';

/** What every pcluster command is given: how it was started, the config, and podman's view of the command line. */
export interface PclusterContext extends BaseContext {
  readonly launch: Launch;
  readonly config: Config;
  /** The whole command line as podman would read it (global options select stores, log level ...). */
  readonly podmanArgv: PodmanArgv;
}
