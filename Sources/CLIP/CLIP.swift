// The CLIP model.
