import test from 'ava';

import {parseMksquashfsWarnings} from '../../sources/migrate/squash.js';
import {failureLine, isPodmanLogRecord} from '../../sources/child.js';
import {parseNetworkBackend} from '../../sources/store/podman.js';

/**
 * What pcluster reads of podman's and the tools' output: formats first (podman info's JSON), and where
 * only stderr says it, never podman's own log records (podman 5 on cgroup v1 hosts warns before every
 * command; rootless "/" is not a shared mount ...).
 */
const CGROUPS_WARNING = `time="2026-12-01T23:07:20Z" level=warning msg="Using cgroups-v1 which is deprecated in favor of cgroups-v2 with Podman v5 and will be removed in a future version. Set environment variable \`PODMAN_IGNORE_CGROUPSV1_WARNING\` to hide this warning."`;

test(`podman's log records are recognised, a tool's lines are not`, t => {
  t.true(isPodmanLogRecord(CGROUPS_WARNING));
  t.true(isPodmanLogRecord(`time="2026-12-01T23:07:20Z" level=error msg="x"`));
  t.false(isPodmanLogRecord(`Unrecognised xattr prefix system.posix_acl_access`));
  t.false(isPodmanLogRecord(`Error: image not known`));
});

test(`failureLine: podman's Error line, after any warnings; else the last line that is not a log record`, t => {
  t.is(failureLine({stderr: `${CGROUPS_WARNING}\nError: cni support is not enabled in this build\n`}), `cni support is not enabled in this build`);
  t.is(failureLine({stderr: `Error: first\n${CGROUPS_WARNING}\n`}), `first`);
  t.is(failureLine({stderr: `mksquashfs: no space\n${CGROUPS_WARNING}`}), `mksquashfs: no space`);
  t.is(failureLine({stderr: CGROUPS_WARNING}), CGROUPS_WARNING);
  t.is(failureLine({stderr: ``, shortMessage: `Command timed out`}), `Command timed out`);
});

test(`mksquashfs warnings: the tool's lines only, podman unshare's own records left out`, t => {
  const stderr = `${CGROUPS_WARNING}\nUnrecognised xattr prefix system.posix_acl_access\nfailed to read file /x\n`;
  t.deepEqual(parseMksquashfsWarnings(stderr), [`Unrecognised xattr prefix system.posix_acl_access`, `failed to read file /x`]);
  t.deepEqual(parseMksquashfsWarnings(`${CGROUPS_WARNING}\n`), []);
});

test(`the network backend comes from podman info's JSON`, t => {
  t.is(parseNetworkBackend(JSON.stringify({host: {networkBackend: `netavark`, networkBackendInfo: {}}})), `netavark`);
  t.is(parseNetworkBackend(JSON.stringify({host: {networkBackend: `cni`}})), `cni`);
  t.is(parseNetworkBackend(JSON.stringify({host: {}})), null);
  t.is(parseNetworkBackend(JSON.stringify({host: {networkBackend: `net avark"`}})), null, `only a plain name goes into a TOML file`);
  t.is(parseNetworkBackend(`not json`), null);
  t.is(parseNetworkBackend(`null`), null);
});
