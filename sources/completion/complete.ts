import type {Definition} from 'clipanion';

import {OWN_COMMANDS} from '../commands/names.js';
import {parsePodmanArgv, SHARED_BASE_LAYERS} from '../podman/argv.js';

/**
 * Shell completion for `pcluster`. The shell scripts are podman's own (cobra's), renamed: they ask
 * `pcluster __complete WORDS...` for candidates. pcluster answers for its own commands from their
 * clipanion definitions, and for everything else relays podman's answer with what pcluster adds
 * (its commands at the top level, --shared-base-layers where it applies). Cobra's protocol: one
 * candidate per line (`value<TAB>description`), then `:DIRECTIVE`.
 */
export interface Candidate {
  readonly value: string;
  readonly description: string;
}

export interface Answer {
  readonly candidates: readonly Candidate[];
  readonly directive: number;
}

/** cobra's ShellCompDirective bits. */
const DIRECTIVE_DEFAULT = 0;
const DIRECTIVE_NO_FILES = 4;

/** The subcommands where --shared-base-layers means something. */
const SHARED_SUBCOMMANDS: ReadonlySet<string> = new Set([`run`, `create`, `pull`, `images`]);
/** pcluster's commands whose argument is an image podman knows (completed by podman). */
const IMAGE_ARGUMENT = `migrate`;

export interface Sources {
  readonly definitions: readonly Definition[];
  /** podman's own answer for these words (`podman __complete WORDS...`). */
  askPodman(words: readonly string[]): Promise<Answer>;
}

export async function complete(words: readonly string[], sources: Sources): Promise<Answer> {
  const current = words.at(-1) ?? ``;
  const before = words.slice(0, -1);
  const parsed = parsePodmanArgv(before);
  const first = parsed.commandPath[0];
  if (first !== undefined && OWN_COMMANDS.has(first))
    return completeOwn([...parsed.commandPath, ...parsed.rest], current, sources);

  // podman rejects a flag it does not know, and would answer nothing.
  const answer = await sources.askPodman(words.filter((word, index) => index === words.length - 1 || word !== SHARED_BASE_LAYERS));
  const extra: Candidate[] = [];
  if (first === undefined && !current.startsWith(`-`)) {
    for (const command of ownCommands(sources.definitions))
      extra.push(command);
  } else if (parsed.subcommand !== null && SHARED_SUBCOMMANDS.has(parsed.subcommand) && current.startsWith(`-`)) {
    extra.push({value: SHARED_BASE_LAYERS, description: `pcluster: use the shared image stores`});
  }
  return {
    candidates: [...answer.candidates, ...extra.filter(candidate => candidate.value.startsWith(current))],
    directive: answer.directive,
  };
}

/** `doctor`, `migrate`, `store` ... with their descriptions (a group takes its first child's). */
function ownCommands(definitions: readonly Definition[]): Candidate[] {
  const seen = new Map<string, Candidate>();
  for (const definition of definitions) {
    const word = commandWords(definition)[0]!;
    if (OWN_COMMANDS.has(word) && !seen.has(word))
      seen.set(word, {value: word, description: word === `store` ? `manage a shared image store` : (definition.description ?? ``).trim()});
  }
  return [...seen.values()];
}

async function completeOwn(typed: readonly string[], current: string, sources: Sources): Promise<Answer> {
  const words = typed.filter(word => !word.startsWith(`-`));
  const matching = sources.definitions.filter(definition => startsWith(commandWords(definition), words.slice(0, commandWords(definition).length)));
  const exact = matching.find(definition => commandWords(definition).length <= words.length);
  if (exact === undefined) {
    // Still choosing a subcommand (`store <TAB>`).
    const next = matching.map(definition => ({value: commandWords(definition)[words.length]!, description: (definition.description ?? ``).trim()}));
    return {candidates: next.filter(candidate => candidate.value.startsWith(current)), directive: DIRECTIVE_NO_FILES};
  }
  const previous = typed.at(-1);
  if (previous !== undefined && exact.options.some(option => option.definition === `${previous} #0`))
    return {candidates: [], directive: DIRECTIVE_DEFAULT}; // an option's value: paths
  if (current.startsWith(`-`)) {
    const options = exact.options.map(option => ({value: option.definition.split(` `)[0]!, description: (option.description ?? ``).trim()}));
    return {candidates: options.filter(option => option.value.startsWith(current)), directive: DIRECTIVE_NO_FILES};
  }
  if (commandWords(exact).join(` `) === IMAGE_ARGUMENT)
    return sources.askPodman([`image`, `inspect`, current]);
  return {candidates: [], directive: exact.usage.includes(`<`) ? DIRECTIVE_DEFAULT : DIRECTIVE_NO_FILES};
}

function commandWords(definition: Definition): string[] {
  return definition.path.split(` `).slice(1);
}

function startsWith(path: readonly string[], prefix: readonly string[]): boolean {
  return prefix.every((word, index) => path[index] === word);
}

/** Reads cobra's answer: candidate lines, then `:DIRECTIVE` (missing or garbled: nothing to offer). */
export function parseCobraAnswer(output: string): Answer {
  const lines = output.split(`\n`).filter(line => line !== ``);
  const last = lines.at(-1);
  if (last === undefined || !/^:\d+$/.test(last))
    return {candidates: [], directive: DIRECTIVE_DEFAULT};
  const candidates = lines.slice(0, -1).map(line => {
    const tab = line.indexOf(`\t`);
    return tab < 0 ? {value: line, description: ``} : {value: line.slice(0, tab), description: line.slice(tab + 1)};
  });
  return {candidates, directive: Number(last.slice(1))};
}

export function formatCobraAnswer(answer: Answer): string {
  const lines = answer.candidates.map(candidate => candidate.description ? `${candidate.value}\t${candidate.description}` : candidate.value);
  return `${[...lines, `:${answer.directive}`].join(`\n`)}\n`;
}

/**
 * podman's completion script for SHELL, for a program named pcluster: cobra generates the same text
 * with the program's name in every identifier and in the command it asks for candidates.
 */
export function renameScript(podmanScript: string): string {
  return podmanScript.replaceAll(`podman`, `pcluster`).replaceAll(`PODMAN`, `PCLUSTER`);
}

/** `pcluster __complete WORDS...`: prints the answer on stdout, as cobra's programs do. */
export async function answerCompletion(words: readonly string[], podman: string): Promise<number> {
  const [{buildCli}, {runChild}] = await Promise.all([import(`../cli.js`), import(`../child.js`)]);
  const answer = await complete(words, {
    definitions: buildCli().definitions(),
    async askPodman(podmanWords) {
      // The renamed scripts set cobra's switch under our name; podman reads it under its own.
      const activeHelp = process.env.PCLUSTER_ACTIVE_HELP;
      const env = activeHelp === undefined ? {} : {PODMAN_ACTIVE_HELP: activeHelp};
      const result = await runChild(podman, [`__complete`, ...podmanWords], {seconds: 10, env});
      return parseCobraAnswer(result.stdout);
    },
  });
  process.stdout.write(formatCobraAnswer(answer));
  return 0;
}
