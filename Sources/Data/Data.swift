// The data module: datasets, images, tokenizer, loader, evaluation tasks.
