from qa_bot.cli import main

main()
