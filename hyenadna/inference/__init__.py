"""Running a model on sequences: batching, tiling, masks, likelihood, embedding, scoring,
generation, CUDA graphs, and work spread over several processes (sharding)."""
