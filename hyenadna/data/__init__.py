"""Readers for genomic files: FASTA genomes, intervals, reads and labelled sequences."""
