"""Volumes: the on-disk store of EM image, supervoxels, truth and boundary layers, file formats, the demo."""
