import test from 'ava';

import {parseSubIds} from '../../sources/host/facts.js';

test(`subordinate id ranges are found by user name or uid`, t => {
  const text = `ada:100000:65536\nbob:165536:65536\n1234:231072:65536\n\nbroken line\n`;
  t.deepEqual(parseSubIds(text, `ada`, 1234), [{start: 100000, count: 65536}, {start: 231072, count: 65536}]);
  t.deepEqual(parseSubIds(text, `carol`, 99), []);
});
