"""covcall dashboard entry point: page config, navigation and the settings check (`streamlit run app.py`)."""

import ui

page = ui.page_shell()  # st.set_page_config(layout="wide") + st.navigation over pages/*.py
ui.get_settings()  # a bad setting stops here with one st.error line
ui.run_page(page)  # the error boundary of every page
