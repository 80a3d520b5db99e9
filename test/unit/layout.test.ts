import test from 'ava';

import {bigDataFileName} from '../../sources/store/layout.js';

test(`image metadata files are named as containers-storage names them`, t => {
  // Keys and file names as podman 4.3 wrote them for busybox (overlay-images/ID/).
  t.is(bigDataFileName(`manifest`), `manifest`);
  t.is(bigDataFileName(`sha256:362c84bf8d2ea2be477f2128244e20875bdf10ac6aabb992af6d37330f48ef06`),
    `=c2hhMjU2OjM2MmM4NGJmOGQyZWEyYmU0NzdmMjEyODI0NGUyMDg3NWJkZjEwYWM2YWFiYjk5MmFmNmQzNzMzMGY0OGVmMDY=`);
  t.is(bigDataFileName(`manifest-sha256:d3522c6bff33659330f195c4b4396f0ad45a11451b08b50e43049502f78e6832`),
    `=bWFuaWZlc3Qtc2hhMjU2OmQzNTIyYzZiZmYzMzY1OTMzMGYxOTVjNGI0Mzk2ZjBhZDQ1YTExNDUxYjA4YjUwZTQzMDQ5NTAyZjc4ZTY4MzI=`);
  t.is(bigDataFileName(`signature-d3522c6bff33659330f195c4b4396f0ad45a11451b08b50e43049502f78e6832`),
    `=c2lnbmF0dXJlLWQzNTIyYzZiZmYzMzY1OTMzMGYxOTVjNGI0Mzk2ZjBhZDQ1YTExNDUxYjA4YjUwZTQzMDQ5NTAyZjc4ZTY4MzI=`);
  // Anything outside lower-case letters, digits and dots is encoded, non-ASCII as its UTF-8 bytes.
  t.is(bigDataFileName(`Manifest`), `=TWFuaWZlc3Q=`);
  t.is(bigDataFileName(`é`), `=w6k=`);
});
