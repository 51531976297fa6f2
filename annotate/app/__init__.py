"""The Streamlit app: entry point, server, pages, widgets (context.py: the page contract)."""
