"""The script file Streamlit runs (see streamlit_app.py for why it has a folder of its own)."""
