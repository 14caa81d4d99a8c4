"""Publishing a saved model: the model card, the generated Gradio Space, and pushes to the Hub."""
