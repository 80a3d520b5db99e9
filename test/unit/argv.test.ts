import test from 'ava';

import {parsePodmanArgv, parseSubcommandArgs, tokensWithout, globalValue, globalValues} from '../../sources/podman/argv.js';
import {plainArgv} from '../../sources/run/plan.js';
import {runRequest} from '../../sources/run/request.js';

test(`global options with separate and inline values come before the subcommand`, t => {
  const parsed = parsePodmanArgv([`--root`, `/tmp/r`, `--runroot=/tmp/rr`, `--log-level`, `debug`, `run`, `--rm`, `alpine`]);
  t.deepEqual(parsed.commandPath, [`run`]);
  t.is(parsed.subcommand, `run`);
  t.is(globalValue(parsed, `--root`), `/tmp/r`);
  t.is(globalValue(parsed, `--runroot`), `/tmp/rr`);
  t.is(globalValue(parsed, `--log-level`), `debug`);
  t.deepEqual(parsed.rest, [`--rm`, `alpine`]);
});

test(`a global option value that looks like a subcommand or an image stays a value`, t => {
  const parsed = parsePodmanArgv([`--root`, `run`, `--storage-opt`, `alpine`, `images`]);
  t.is(globalValue(parsed, `--root`), `run`);
  t.deepEqual(globalValues(parsed, `--storage-opt`), [`alpine`]);
  t.is(parsed.subcommand, `images`);
});

test(`repeated --storage-opt values are all kept, last --root wins`, t => {
  const parsed = parsePodmanArgv([`--storage-opt`, `a=1`, `--storage-opt=b=2`, `--root`, `/x`, `--root`, `/y`, `ps`]);
  t.deepEqual(globalValues(parsed, `--storage-opt`), [`a=1`, `b=2`]);
  t.is(globalValue(parsed, `--root`), `/y`);
});

test(`remote options: -r is a boolean, -c and --url take values`, t => {
  const parsed = parsePodmanArgv([`-r`, `-c`, `cluster`, `--url`, `unix:/x.sock`, `ps`, `-a`]);
  t.deepEqual(parsed.globals.map(option => [option.name, option.value]), [[`-r`, null], [`-c`, `cluster`], [`--url`, `unix:/x.sock`]]);
  t.is(parsed.subcommand, `ps`);
});

test(`container run and image pull map onto run and pull`, t => {
  t.is(parsePodmanArgv([`container`, `run`, `img`]).subcommand, `run`);
  t.deepEqual(parsePodmanArgv([`container`, `run`, `img`]).rest, [`img`]);
  t.is(parsePodmanArgv([`image`, `pull`, `img`]).subcommand, `pull`);
  t.is(parsePodmanArgv([`image`, `ls`]).subcommand, `images`);
  t.is(parsePodmanArgv([`container`, `--help`]).subcommand, `container`);
});

test(`no subcommand: only globals`, t => {
  const parsed = parsePodmanArgv([`--version`]);
  t.is(parsed.subcommand, null);
  t.deepEqual(parsed.globals.map(option => option.name), [`--version`]);
});

test(`run options: the image is the first positional, flags after it belong to the command`, t => {
  const args = parseSubcommandArgs(`run`, [`--rm`, `-v`, `/a:/b`, `--env=X=1`, `-it`, `img`, `sh`, `-c`, `--rm`]);
  t.deepEqual(args.options.map(option => [option.name, option.value]), [[`--rm`, null], [`-v`, `/a:/b`], [`--env`, `X=1`], [`-i`, null], [`-t`, null]]);
  t.deepEqual(args.positionals, [`img`, `sh`, `-c`, `--rm`]);
});

test(`run option values that look like images or options are values`, t => {
  const args = parseSubcommandArgs(`run`, [`--name`, `alpine`, `-e`, `--rm`, `--entrypoint`, `sh`, `busybox`]);
  t.deepEqual(args.options.map(option => option.value), [`alpine`, `--rm`, `sh`]);
  t.deepEqual(args.positionals, [`busybox`]);
});

test(`short clusters: a value-taking letter swallows the rest of the token or the next one`, t => {
  const inline = parseSubcommandArgs(`run`, [`-ePATH=/x`, `-itu`, `1000`, `-w=/tmp`, `img`]);
  t.deepEqual(inline.options.map(option => [option.name, option.value]), [[`-e`, `PATH=/x`], [`-i`, null], [`-t`, null], [`-u`, `1000`], [`-w`, `/tmp`]]);
  t.deepEqual(inline.positionals, [`img`]);
});

test(`-- ends options; a lone - is a positional`, t => {
  const args = parseSubcommandArgs(`run`, [`--rm`, `--`, `--weird-image-name`, `cmd`]);
  t.true(args.doubleDash);
  t.deepEqual(args.positionals, [`--weird-image-name`, `cmd`]);
  t.deepEqual(parseSubcommandArgs(`images`, [`-`]).positionals, [`-`]);
});

test(`the shared-base-layers flag is found anywhere among run options and removed verbatim`, t => {
  const argv = [`--root`, `/r`, `run`, `-it`, `--shared-base-layers`, `-v`, `/a:/b`, `img`, `sh`, `--shared-base-layers`];
  t.deepEqual(plainArgv(runRequest(argv, parsePodmanArgv(argv))!), [`--root`, `/r`, `run`, `-it`, `-v`, `/a:/b`, `img`, `sh`, `--shared-base-layers`]);
});

test(`removing an option keeps short clusters whole and --`, t => {
  const argv = [`run`, `-dit`, `--shared-base-layers=true`, `--`, `img`];
  t.deepEqual(plainArgv(runRequest(argv, parsePodmanArgv(argv))!), [`run`, `-dit`, `--`, `img`]);
  const args = parseSubcommandArgs(`run`, [`-it`, `img`]);
  t.deepEqual(tokensWithout(args.options, () => false), [`-it`]);
});

test(`an unchanged model re-serialises to the original argv`, t => {
  const argv = [`--log-level=debug`, `-c`, `x`, `container`, `create`, `-ePATH`, `--pull`, `never`, `img`, `a`, `b`];
  const parsed = parsePodmanArgv(argv);
  const args = parseSubcommandArgs(parsed.subcommand!, parsed.rest);
  t.deepEqual([...tokensWithout(parsed.globals, () => false), ...parsed.commandPath, ...args.optionTokens, ...args.positionals], argv);
});
