// Determinism guard: the recorded histories (test/replay/histories, from test/replay/record-histories.ts)
// must replay against the current workflow code without a nondeterminism error. A change that reorders,
// adds or removes a step of a running saga fails here; make such a change with workflow versioning.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { workflowBundle } from '../support/temporal';

const HISTORIES = path.join(__dirname, 'histories');

describe('replay of recorded OrderSaga histories', function () {
  const files = readdirSync(HISTORIES).filter((file) => file.endsWith('.json'));

  it('has recorded histories to replay', function () {
    assert.ok(files.length >= 2, `expected recorded histories in ${HISTORIES}`);
  });

  for (const file of files) {
    it(`replays ${file} without a nondeterminism error`, async function () {
      const history = historyFromJSON(JSON.parse(readFileSync(path.join(HISTORIES, file), 'utf8')));
      assert.ok((history.events?.length ?? 0) > 20, 'the history holds a whole saga');
      await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, `replay-${file}`);
    });
  }
});
