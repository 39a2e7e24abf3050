// Builds the C fixtures once per run (gcc), into test/fixtures/bin.
import { buildFixtures } from './helpers/fixtures.js';

export default function setup(): void {
  buildFixtures();
}
