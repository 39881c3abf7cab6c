"""The script `streamlit run` executes (see `sovra ui`). Everything lives in sovra.ui.chat.views."""

from sovra.ui.chat.views import main

main()
