import {defaultLogFile, loadConfig, parseLogLevel} from './config/load.js';
import type {Config} from './config/schema.js';
import {initLog, moreVerbose} from './log.js';
import {globalValue, type PodmanArgv} from './podman/argv.js';

/**
 * Config and logging, for the paths that are ours. podman's --log-level sets our level too. `env` is
 * what the config is read from (a run decision passes one that notes what was read).
 */
export function setUp(parsed: PodmanArgv, env: NodeJS.ProcessEnv = process.env): Config {
  const podmanLevel = globalValue(parsed, `--log-level`);
  const level = podmanLevel === null ? null : parseLogLevel(podmanLevel, `--log-level`);
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (error) {
    // A broken config still gets its error into the default log file, where an admin looks.
    initLog({file: defaultLogFile(env), fileLevel: `info`, stderrLevel: `fatal`});
    throw error;
  }
  initLog({
    file: config.log.file,
    fileLevel: level === null ? config.log.level : moreVerbose(config.log.level, level),
    stderrLevel: level ?? (config.run.notices ? `warn` : `error`),
  });
  return config;
}
