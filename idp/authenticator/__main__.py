from idp.authenticator.cli import main

main()
