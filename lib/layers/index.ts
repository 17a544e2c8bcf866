/** Image layers on plain directory trees: apply a layer tar, list changes, export a diff. */
export { applyLayer, type ApplyOptions } from './apply';
export { changes, treeChanges, nodeChanged, type Change, type ChangeKind } from './changes';
export { exportChanges } from './export';
export { readTree, readNode, flatten, type TreeNode, type NodeType } from './tree';
export { classifyName, whiteoutFor, WHITEOUT_PREFIX, OPAQUE_MARKER, WHITEOUT_META_PREFIX } from './whiteouts';
export { entryComponents, resolveDir, unsafeEntry } from './paths';
