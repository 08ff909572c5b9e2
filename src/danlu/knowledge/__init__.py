"""Knowledge bases: documents → chunks → embeddings and keywords → retrieval."""
