"""The script Streamlit runs: it only calls `annotate.app.main.main()`.

It lives in a folder of its own because Streamlit treats a `pages/` folder beside its main
script as an old-style multipage app: the first run of a fresh server process (and every
AppTest run) would then execute `pages/<name>.py` as a script for a URL like `/my_work`,
bypassing `st.navigation` and showing an empty page.
"""

from annotate.app.main import main

main()
