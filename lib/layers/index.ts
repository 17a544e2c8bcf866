/** Image layers on plain directory trees: apply a layer tar, list changes, export a diff. */
export { applyLayer, type ApplyOptions } from './apply';
export { changes, treeChanges, nodeChanged, byPath, type Change, type ChangeKind } from './changes';
export { exportChanges, type LayerExport } from './export';
export { readTree, readNode, flatten, emptyDir, type TreeNode, type NodeType } from './tree';
export { classifyName, whiteoutFor, WHITEOUT_PREFIX, OPAQUE_MARKER, WHITEOUT_META_PREFIX, type WhiteoutKind } from './whiteouts';
export { entryComponents, resolveDir, unsafeEntry, type ResolveOptions } from './paths';
