import {readFileSync} from 'node:fs';
import {join} from 'node:path';
import test from 'ava';

import {EXPLANATIONS} from '../../scripts/troubleshooting/explanations.js';
import {explain, renderTroubleshooting} from '../../scripts/troubleshooting/generate.js';
import {collectMessages} from '../../scripts/troubleshooting/messages.js';
import {REPO} from '../helpers/node.js';

const messages = collectMessages(REPO);

test(`the code's message list is found (errors, fallbacks, mount program, shim)`, t => {
  t.true(messages.length > 80);
  t.true(messages.some(message => message.origin === `fallback` && message.text.startsWith(`no shared store is configured`)));
  t.true(messages.some(message => message.origin === `mount` && message.text.includes(`outside its store`)));
  t.true(messages.some(message => message.origin === `shim` && message.exitCode === 127));
});

test(`every message has an explanation, and every explanation explains something`, t => {
  t.deepEqual(messages.filter(message => explain(message) === undefined).map(message => `${message.where}: ${message.text}`), []);
  const used = new Set(messages.map(message => explain(message)));
  t.deepEqual(EXPLANATIONS.filter(explanation => !used.has(explanation)).map(explanation => String(explanation.match)), []);
});

test(`docs/troubleshooting.md is what the code says (regenerate: yarn docs)`, t => {
  t.is(readFileSync(join(REPO, `docs`, `troubleshooting.md`), `utf8`), renderTroubleshooting(REPO));
});
