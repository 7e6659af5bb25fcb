"""Tasks built on the zoo's trained networks (retrieval); each imports the package, never the reverse."""
