from tlhub.cli.main import main

raise SystemExit(main())
