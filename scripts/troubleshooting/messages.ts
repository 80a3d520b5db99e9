/**
 * The code's own list of what pcluster prints when something is wrong, read from the sources: the
 * TypeScript (parsed with the compiler, so nested templates come out right) and the two shell entry
 * points. docs/troubleshooting.md is generated from this list; a unit test keeps both in step.
 */
import {readdirSync, readFileSync} from 'node:fs';
import {join, relative} from 'node:path';
import ts from 'typescript';

export type Origin = `error` | `fallback` | `notice` | `reason` | `problem` | `mount` | `shim`;

export interface Message {
  /** The message with every computed part shown as `…`. */
  readonly text: string;
  readonly origin: Origin;
  /** Repository-relative file and line. */
  readonly where: string;
  /** The exit code, when the message ends the command. */
  readonly exitCode: number | null;
}

const EXIT_CODES: Record<string, number> = {EXIT_PODMAN_ERROR: 125, EXIT_NOT_FOUND: 127};
const HOLE = `…`;

export function collectMessages(repo: string): Message[] {
  const messages: Message[] = [];
  for (const file of sourceFiles(join(repo, `sources`)))
    messages.push(...fromTypeScript(repo, file));
  messages.push(...fromShell(repo, join(`shims`, `pcluster-mount`), /^\s*.*\bdie "((?:[^"\\]|\\.)*)"/, `mount`));
  messages.push(...fromShell(repo, join(`shims`, `pcluster`), /pcluster_die "((?:[^"\\]|\\.)*)" (\d+)/, `shim`));
  // One entry per text and origin: the same message raised in two places reads the same.
  const seen = new Set<string>();
  return messages.filter(message => {
    const key = `${message.origin}\0${message.text}`;
    if (seen.has(key))
      return false;
    seen.add(key);
    return true;
  });
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, {withFileTypes: true}).flatMap(entry => {
    const path = join(dir, entry.name);
    if (entry.isDirectory())
      return sourceFiles(path);
    return entry.name.endsWith(`.ts`) ? [path] : [];
  }).sort();
}

function fromTypeScript(repo: string, path: string): Message[] {
  const source = ts.createSourceFile(path, readFileSync(path, `utf8`), ts.ScriptTarget.Latest, true);
  const found: Message[] = [];
  const add = (node: ts.Node, origin: Origin, exitCode: number | null, suffix = ``) => {
    const text = render(node) + suffix;
    // A message that is all computed relays another one (listed where that one is made).
    if (!/[a-z]{2}/i.test(text.replaceAll(HOLE, ``)))
      return;
    const line = source.getLineAndCharacterOfPosition(node.getStart()).line + 1;
    found.push({text, origin, where: `${relative(repo, path)}:${line}`, exitCode});
  };
  const visit = (node: ts.Node, inMessageFunction: boolean) => {
    if (ts.isNewExpression(node) && ts.isIdentifier(node.expression) && node.arguments?.[0]) {
      if (node.expression.text === `UserError`)
        add(node.arguments[0], `error`, exitCodeOf(node.arguments[1]));
      else if (node.expression.text === `Fallback`)
        add(node.arguments[0], `fallback`, null);
    }
    // A child that must succeed (sources/child.ts runOrFail) fails with `WHAT failed: REASON`.
    if (ts.isCallExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === `runOrFail`) {
      const options = node.arguments[2];
      const what = options && ts.isObjectLiteralExpression(options)
        ? options.properties.find((property): property is ts.PropertyAssignment => ts.isPropertyAssignment(property) && ts.isIdentifier(property.name) && property.name.text === `what`)
        : undefined;
      if (what !== undefined && isText(what.initializer))
        add(what.initializer, `error`, null, ` failed: ${HOLE}`);
    }
    // A subclass of UserError (UnreadableError ...) is a user error too: its message is what it hands to super.
    if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.SuperKeyword && node.arguments[0] && inUserErrorSubclass(node))
      add(node.arguments[0], `error`, exitCodeOf(node.arguments[1]));
    if (ts.isCallExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === `say` && node.arguments[1]) {
      const level = node.arguments[0];
      if (level && ts.isNoSubstitutionTemplateLiteral(level) && (level.text === `warn` || level.text === `error`) && isText(node.arguments[1]))
        add(node.arguments[1], `notice`, null);
    }
    if (inMessageFunction && ts.isReturnStatement(node) && node.expression && isText(node.expression))
      add(node.expression, `reason`, null);
    if (inMessageFunction && ts.isCallExpression(node) && ts.isPropertyAccessExpression(node.expression) && node.expression.name.text === `push`)
      for (const argument of node.arguments.filter(isText))
        add(argument, `reason`, null);
    if (inMessageFunction && ts.isPropertyAssignment(node) && ts.isIdentifier(node.name) && node.name.text === `message` && isText(node.initializer))
      add(node.initializer, `problem`, null);
    const entering = inMessageFunction || (isFunctionLike(node) && hasMessagesTag(node));
    ts.forEachChild(node, child => visit(child, entering));
  };
  visit(source, false);
  return found;
}

function inUserErrorSubclass(node: ts.Node): boolean {
  let scope: ts.Node | undefined = node.parent;
  while (scope !== undefined && !ts.isClassDeclaration(scope))
    scope = scope.parent;
  return scope !== undefined && (scope.heritageClauses ?? []).some(clause => clause.token === ts.SyntaxKind.ExtendsKeyword
    && clause.types.some(type => ts.isIdentifier(type.expression) && type.expression.text === `UserError`));
}

function isFunctionLike(node: ts.Node): boolean {
  return ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node) || ts.isArrowFunction(node);
}

/** Functions whose returned strings (or `message` properties) are messages people read: JSDoc `@messages`. */
function hasMessagesTag(node: ts.Node): boolean {
  return ts.getJSDocTags(node).some(tag => tag.tagName.text === `messages`);
}

function isText(node: ts.Expression): boolean {
  return ts.isTemplateExpression(node) || ts.isNoSubstitutionTemplateLiteral(node) || ts.isStringLiteral(node);
}

function render(node: ts.Node): string {
  if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node))
    return node.text;
  if (ts.isTemplateExpression(node))
    return node.head.text + node.templateSpans.map(span => HOLE + span.literal.text).join(``);
  if (ts.isBinaryExpression(node) && node.operatorToken.kind === ts.SyntaxKind.PlusToken)
    return render(node.left) + render(node.right);
  if (ts.isParenthesizedExpression(node))
    return render(node.expression);
  return HOLE;
}

function exitCodeOf(node: ts.Expression | undefined): number {
  if (node === undefined)
    return 125;
  if (ts.isNumericLiteral(node))
    return Number(node.text);
  if (ts.isIdentifier(node) && node.text in EXIT_CODES)
    return EXIT_CODES[node.text]!;
  return 125;
}

function fromShell(repo: string, file: string, pattern: RegExp, origin: Origin): Message[] {
  return readFileSync(join(repo, file), `utf8`).split(`\n`).flatMap((line, index) => {
    const match = pattern.exec(line);
    if (match === null || line.trimStart().startsWith(`#`))
      return [];
    const text = match[1]!.replace(/\$(?:\{[A-Za-z_][A-Za-z0-9_]*(?:[#%][^}]*)?\}|[A-Za-z_][A-Za-z0-9_]*|[0-9])/g, HOLE).replace(/\\(.)/g, `$1`);
    return [{text, origin, where: `${file}:${index + 1}`, exitCode: origin === `shim` ? Number(match[2]) : null}];
  });
}
