/** containerd's Update rules: only labels change, all of them or the ones named by field path. */
import { invalidArgument } from '../errors';
import { checkLabels } from './snapshot-errors';

/**
 * The labels after an update. No field paths: the given labels replace all. `labels`: the
 * same. `labels.KEY`: that label is set to the given value, or removed when the given labels
 * lack it. Any other path (name, parent, kind, times) is refused: they cannot change.
 *
 * @throws DevmapperError ERR_INVALID_ARGUMENT for a path that is not a label's, or bad labels
 */
export function updatedLabels(current: Record<string, string>, given: Record<string, string> | undefined, fieldPaths: readonly string[] = []): Record<string, string> {
  const labels = checkLabels(given);
  if (!Array.isArray(fieldPaths)) throw invalidArgument('fieldPaths', 'an array of field paths', fieldPaths);
  if (fieldPaths.length === 0) return labels;
  const out = { ...current };
  for (const path of fieldPaths) {
    if (path === 'labels') {
      for (const k of Object.keys(out)) delete out[k];
      Object.assign(out, labels);
    } else if (typeof path === 'string' && path.startsWith('labels.') && path.length > 'labels.'.length) {
      const key = path.slice('labels.'.length);
      if (Object.hasOwn(labels, key)) out[key] = labels[key] as string;
      else delete out[key];
    } else {
      throw invalidArgument('fieldPaths', "'labels' or 'labels.KEY' (only labels can be updated)", path);
    }
  }
  return checkLabels(out);
}
