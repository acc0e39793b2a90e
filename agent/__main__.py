from agent.quick_search import main

main()
