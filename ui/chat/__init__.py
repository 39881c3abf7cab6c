"""The Streamlit chat (`sovra ui`): ``app.py`` is the script Streamlit runs, ``views`` draws it,
``session`` holds what it asks the core (runs, passages, audit steps, feedback) and ``identity``
decides who is asking. Streamlit is imported only by ``app``, ``views`` and ``identity.login``."""
