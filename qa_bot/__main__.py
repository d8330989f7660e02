from qa_bot.app.cli import main

main()
