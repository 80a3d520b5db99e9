import {mkdirSync, renameSync, statSync} from 'node:fs';
import {dirname} from 'node:path';
import pino from 'pino';

import {LOG_LEVELS, type LogLevel} from './config/settings.js';

/**
 * Two audiences: the JSON log file (everything at the configured level, for admins and bug reports)
 * and stderr (one `pcluster: ...` line per message a human should see). stdout is never ours.
 */

/** The log file is cut over to `.1` past this size, so a node running thousands of jobs stays bounded. */
const MAX_LOG_BYTES = 8 * 1024 * 1024;

export interface LogOptions {
  readonly file: string;
  readonly fileLevel: LogLevel;
  /** Level from which messages also go to stderr (podman's --log-level when given, else warn). */
  readonly stderrLevel: LogLevel;
}

let fileLogger: pino.Logger = pino({enabled: false});
let stderrLevel: LogLevel = `warn`;
/** Where our stderr lines go while a progress display holds the terminal (it prints them above itself). */
let stderrWriter: ((text: string) => void) | null = null;

/** Our `pcluster: ...` lines go to `writer` instead of stderr (a progress display's), until called with null. */
export function divertStderr(writer: ((text: string) => void) | null): void {
  stderrWriter = writer;
}

function writeStderr(text: string): void {
  if (stderrWriter !== null)
    stderrWriter(text);
  else
    process.stderr.write(text);
}

/** The log file only: structured detail nobody needs on their terminal. */
export function log(): pino.Logger {
  return fileLogger;
}

export function initLog(options: LogOptions): void {
  stderrLevel = options.stderrLevel;
  const file = openLogFile(options.file);
  fileLogger = file === null
    ? pino({enabled: false})
    : pino({level: options.fileLevel, base: {pid: process.pid}}, file);
}

/** A message for the user: to stderr (at or above the stderr level) and to the log file. */
export function say(level: LogLevel, message: string, fields: Record<string, unknown> = {}): void {
  fileLogger[level](fields, message);
  if (atLeast(level, stderrLevel))
    writeStderr(`pcluster: ${message}\n`);
}

/**
 * A log file that cannot be opened (read-only home, quota) must never fail the user's job: logging
 * to the file is then skipped.
 */
function openLogFile(file: string): pino.DestinationStream | null {
  try {
    mkdirSync(dirname(file), {recursive: true, mode: 0o700});
    rotateIfLarge(file);
    const destination = pino.destination({dest: file, sync: true, append: true});
    destination.on(`error`, () => {});
    return destination;
  } catch {
    return null;
  }
}

function rotateIfLarge(file: string): void {
  try {
    if (statSync(file).size > MAX_LOG_BYTES)
      renameSync(file, `${file}.1`);
  } catch {
    // No file yet, or another process rotated it first.
  }
}

function atLeast(level: LogLevel, threshold: LogLevel): boolean {
  return LOG_LEVELS.indexOf(level) >= LOG_LEVELS.indexOf(threshold);
}

export function moreVerbose(a: LogLevel, b: LogLevel): LogLevel {
  return LOG_LEVELS.indexOf(a) <= LOG_LEVELS.indexOf(b) ? a : b;
}

/** A stage of long work: shown on an interactive terminal, only logged otherwise. */
export function progress(message: string, fields: Record<string, unknown> = {}): void {
  fileLogger.info(fields, message);
  if (process.stderr.isTTY)
    writeStderr(`pcluster: ${message}\n`);
}

/** The outcome of a command the user ran on purpose (migrate, store rm): always shown on stderr. */
export function report(message: string, fields: Record<string, unknown> = {}): void {
  fileLogger.info(fields, message);
  writeStderr(`pcluster: ${message}\n`);
}
