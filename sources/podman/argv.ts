import {
  COMMAND_GROUPS, GLOBAL_VALUE_OPTIONS, GROUP_ALIASES, IMAGES_VALUE_OPTIONS, PULL_VALUE_OPTIONS,
  RUN_VALUE_OPTIONS,
} from './options.js';

/**
 * A typed model of a podman command line, parsed the way podman's pflag parses it, so that later
 * stages find `run`, its options and the image reliably. Every piece keeps the exact tokens it was
 * read from: re-serialising a model that nobody changed gives back the original argv, byte for byte.
 */

export interface ParsedOption {
  /** The option as written, without its value: `--root`, `-v`, `--shared-base-layers`. */
  readonly name: string;
  /** Its value (from `--opt=v`, `--opt v`, `-ov`, `-o v`), or null for a flag given without one. */
  readonly value: string | null;
  /** The argv tokens the option was read from. A short cluster (`-it`) is one token shared by two options. */
  readonly tokens: readonly string[];
}

export interface PodmanArgv {
  /** Options before the subcommand. */
  readonly globals: readonly ParsedOption[];
  /** The command path as typed: `['run']`, `['container', 'run']`, `[]` when there is none. */
  readonly commandPath: readonly string[];
  /** The canonical subcommand: `run` for `run` and `container run`; null when none was given. */
  readonly subcommand: string | null;
  /** Everything after the command path, untouched. */
  readonly rest: readonly string[];
}

export interface SubcommandArgs {
  readonly options: readonly ParsedOption[];
  /** Tokens of the options, in order (what podman gets before the positionals). */
  readonly optionTokens: readonly string[];
  /** Whether a `--` ended the options. */
  readonly doubleDash: boolean;
  /** Positional arguments: for run/create, the image then the container's command. */
  readonly positionals: readonly string[];
}

/** The option that asks for pcluster; it never reaches podman. */
export const SHARED_BASE_LAYERS = `--shared-base-layers`;

export function parsePodmanArgv(argv: readonly string[]): PodmanArgv {
  const globals: ParsedOption[] = [];
  let index = 0;
  while (index < argv.length) {
    const token = argv[index]!;
    if (token === `--` || !isOptionToken(token))
      break;
    const {options, consumed} = readOption(argv, index, GLOBAL_VALUE_OPTIONS);
    globals.push(...options);
    index += consumed;
  }

  if (index < argv.length && argv[index] === `--`)
    index += 1;

  const commandPath: string[] = [];
  if (index < argv.length) {
    commandPath.push(argv[index]!);
    index += 1;
    // Only groups nest; a group's subcommand follows it directly (`podman container run`).
    if (COMMAND_GROUPS.has(commandPath[0]!) && index < argv.length && !isOptionToken(argv[index]!)) {
      commandPath.push(argv[index]!);
      index += 1;
    }
  }

  return {
    globals,
    commandPath,
    subcommand: canonicalSubcommand(commandPath),
    rest: argv.slice(index),
  };
}

function canonicalSubcommand(commandPath: readonly string[]): string | null {
  if (commandPath.length === 0)
    return null;
  const joined = commandPath.join(` `);
  return GROUP_ALIASES[joined] ?? joined;
}

/** The value-taking options of the subcommands whose arguments pcluster reads. */
const SUBCOMMAND_VALUE_OPTIONS: Readonly<Record<string, ReadonlySet<string>>> = {
  run: RUN_VALUE_OPTIONS,
  create: RUN_VALUE_OPTIONS,
  pull: PULL_VALUE_OPTIONS,
  images: IMAGES_VALUE_OPTIONS,
};

export function subcommandReadsArgs(subcommand: string | null): boolean {
  return subcommand !== null && subcommand in SUBCOMMAND_VALUE_OPTIONS;
}

/**
 * Splits a subcommand's arguments into options and positionals. podman stops reading options at
 * the first positional for run/create (flags after the image belong to the container's command);
 * pcluster applies that rule to every subcommand it reads, which is what podman does for pull and
 * images in practice since their positionals come last.
 */
export function parseSubcommandArgs(subcommand: string, rest: readonly string[]): SubcommandArgs {
  const table = SUBCOMMAND_VALUE_OPTIONS[subcommand];
  if (table === undefined)
    throw new Error(`parseSubcommandArgs: no option table for ${subcommand}`);

  const options: ParsedOption[] = [];
  let index = 0;
  while (index < rest.length) {
    const token = rest[index]!;
    if (token === `--` || !isOptionToken(token))
      break;
    const read = readOption(rest, index, table);
    options.push(...read.options);
    index += read.consumed;
  }
  const optionTokens = rest.slice(0, index);
  const doubleDash = rest[index] === `--`;
  if (doubleDash)
    index += 1;
  return {options, optionTokens, doubleDash, positionals: rest.slice(index)};
}

/** A lone `-` is a positional (stdin), as are tokens not starting with a dash. */
function isOptionToken(token: string): boolean {
  return token.startsWith(`-`) && token !== `-`;
}

function readOption(argv: readonly string[], index: number, valueOptions: ReadonlySet<string>): {options: ParsedOption[], consumed: number} {
  const token = argv[index]!;
  if (token.startsWith(`--`))
    return readLongOption(argv, index, valueOptions);
  return readShortCluster(argv, index, valueOptions);
}

function readLongOption(argv: readonly string[], index: number, valueOptions: ReadonlySet<string>): {options: ParsedOption[], consumed: number} {
  const token = argv[index]!;
  const equals = token.indexOf(`=`);
  if (equals !== -1) {
    const name = token.slice(0, equals);
    return {options: [{name, value: token.slice(equals + 1), tokens: [token]}], consumed: 1};
  }
  if (valueOptions.has(token) && index + 1 < argv.length) {
    const value = argv[index + 1]!;
    return {options: [{name: token, value, tokens: [token, value]}], consumed: 2};
  }
  return {options: [{name: token, value: null, tokens: [token]}], consumed: 1};
}

/**
 * `-it`, `-ePATH=x`, `-e=x`, `-e x`: pflag reads short flags left to right; the first one that takes
 * a value swallows the rest of the token, or the next token when nothing is left.
 */
function readShortCluster(argv: readonly string[], index: number, valueOptions: ReadonlySet<string>): {options: ParsedOption[], consumed: number} {
  const token = argv[index]!;
  const read: Array<{name: string, value: string | null}> = [];
  let tokens: readonly string[] = [token];
  for (let position = 1; position < token.length; position += 1) {
    const name = `-${token[position]}`;
    if (!valueOptions.has(name)) {
      read.push({name, value: null});
      continue;
    }
    let inline = token.slice(position + 1);
    if (inline.startsWith(`=`))
      inline = inline.slice(1);
    if (position + 1 < token.length) {
      read.push({name, value: inline});
    } else if (index + 1 < argv.length) {
      tokens = [token, argv[index + 1]!];
      read.push({name, value: argv[index + 1]!});
    } else {
      read.push({name, value: null});
    }
    break;
  }
  // Every option of one cluster shares the same tokens array: tokensWithout relies on it.
  return {options: read.map(({name, value}) => ({name, value, tokens})), consumed: tokens.length};
}

/** The last value given for a global option (podman's last-wins rule), or null. */
export function globalValue(parsed: PodmanArgv, ...names: string[]): string | null {
  let found: string | null = null;
  for (const option of parsed.globals)
    if (names.includes(option.name) && option.value !== null)
      found = option.value;
  return found;
}

/** Every value of a repeatable global option, in order. */
export function globalValues(parsed: PodmanArgv, name: string): string[] {
  return parsed.globals.filter(option => option.name === name && option.value !== null).map(option => option.value!);
}

/** Whether a boolean option is on: present without a value, or with a value pflag reads as true. */
export function isFlagOn(option: ParsedOption): boolean {
  return option.value === null || [`true`, `1`, `t`, `T`, `TRUE`, `True`].includes(option.value);
}

/** Tokens of the options, with the ones `drop` selects removed (clusters are never split: see below). */
export function tokensWithout(options: readonly ParsedOption[], drop: (option: ParsedOption) => boolean): string[] {
  const tokens: string[] = [];
  let previous: readonly string[] | null = null;
  for (const option of options) {
    // Options read from one short cluster share the same tokens array; emit it once.
    if (option.tokens === previous)
      continue;
    previous = option.tokens;
    if (!drop(option))
      tokens.push(...option.tokens);
  }
  return tokens;
}
