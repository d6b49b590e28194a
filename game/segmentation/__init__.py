"""Segmentation: boundary maps, watershed supervoxels, the region graph, agglomeration and its edits."""
