from bench.api.run import main

main()
