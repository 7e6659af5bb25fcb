"""Tasks built on the zoo's networks: segmentation (FCN), score maps, retrieval; each imports the package below it,
never the reverse."""
