"""Scale: corpus shards on disk (resumable, bounded memory) and the engines that encode and search
them (local, Ray). Provides ``VectorBlocks`` to search; search never imports scale."""
