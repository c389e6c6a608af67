"""Task models: Keras models on a pretrained backbone that know their task, preprocessor and transfer mode."""
