import {readFileSync} from 'node:fs';
import test from 'ava';

import {OWN_COMMANDS} from '../../sources/commands/names.js';

test(`the shim starts Node for exactly pcluster's own commands`, t => {
  const shim = readFileSync(new URL(`../../shims/pcluster`, import.meta.url), `utf8`);
  const listed = /^PCLUSTER_COMMANDS='([^']*)'$/m.exec(shim)?.[1];
  t.deepEqual(listed?.split(` `).sort(), [...OWN_COMMANDS].sort());
});
