import {readFileSync} from 'node:fs';
import {join} from 'node:path';
import test from 'ava';

import {renderConfigDoc} from '../../scripts/config/generate.js';
import {SETTINGS} from '../../sources/config/settings.js';
import {REPO} from '../helpers/node.js';

const page = readFileSync(join(REPO, `docs`, `config.md`), `utf8`);

test(`docs/config.md shows what the settings table says (regenerate: yarn docs)`, t => {
  t.is(page, renderConfigDoc(page));
});

test(`every setting has its row in docs/config.md`, t => {
  t.deepEqual(SETTINGS.filter(setting => !page.includes(`| \`${setting.section}.${setting.key}\` |`)).map(setting => setting.key), []);
});
