;;; flow.el --- Handoff end to end in Emacs with Eglot, in batch mode  -*- lexical-binding: t -*-

;; Run by server/tests/emacs_e2e.rs as `emacs --batch -l flow.el` (not -Q: Debian's
;; site start-up puts the elpa-* packages on the load path), with
;;   HANDOFF_BIN  the handoff binary
;;   REPO         a repository: greet.py with a TODO on line 2, a trusted .handoff.toml
;;                whose default agent resolves the TODO the same way every time
;;   SCENARIO     accept   server-initiated edits apply without asking
;;                         (`eglot-confirm-server-initiated-edits' nil)
;;                confirm  Eglot 1.9's default: it asks "Proceed? (y or n)" before
;;                         it applies the server's edit; the test answers "y" on
;;                         standard input 12 s later (longer than Eglot's 10 s
;;                         request timeout, within the server's 30 s wait)
;;
;; The user's steps, as Eglot performs them: open greet.py with Eglot connected to
;; `handoff lsp' (from `eglot-server-programs'), pick "Delegate TODO to background
;; agent" from `eglot-code-actions' on the TODO line, wait for the task's hunk to show
;; as a Flymake note, pick "Accept change (Handoff #1)" on it, save the buffer.
;;
;; Every wait is bounded. Any failure prints what the script saw (the buffer, the
;; Flymake diagnostics, the JSON-RPC events) and exits with status 1; success prints
;; "emacs_e2e SCENARIO: ok" and exits 0.

;;; Code:

(require 'cl-lib)
(require 'eglot)
(require 'flymake)
(require 'python)

(defvar e2e-bin (getenv "HANDOFF_BIN"))
(defvar e2e-repo (getenv "REPO"))
(defvar e2e-scenario (getenv "SCENARIO"))

(defvar e2e-expected
  (concat "def greet(name):\n"
          "    return (\"hello, \" + name).upper()\n"
          "\n"
          "print(greet(\"world\"))\n")
  "greet.py once the agent's change is accepted.")

(defvar e2e-buffer nil "The buffer visiting greet.py.")

(defvar e2e-server-messages nil
  "What the server said with window/showMessage, newest first.")

(defvar e2e-executing nil
  "Non-nil while Eglot waits for the answer to a workspace/executeCommand.")

(defvar e2e-edits-inside-command 0
  "How many workspace/applyEdit came while Eglot waited for a command's answer.
There the confirmation prompt would run inside Eglot's synchronous request,
which an interactive Emacs abandons after 10 s; the server sends its edit
after the answer.")

(advice-add 'eglot-execute-command :around
            (lambda (fn &rest args)
              (let ((e2e-executing t)) (apply fn args)))
            '((name . e2e-mark-executing)))

(advice-add 'eglot-handle-request :before
            (lambda (_server method &rest _)
              (when (and (eq method 'workspace/applyEdit) e2e-executing)
                (cl-incf e2e-edits-inside-command)))
            '((name . e2e-record-edit-timing)))

(advice-add 'eglot-handle-notification :before
            (lambda (_server method &rest params)
              (when (eq method 'window/showMessage)
                (push (plist-get params :message) e2e-server-messages)))
            '((name . e2e-record-messages)))

(defun e2e-say (fmt &rest args)
  "Print FMT with ARGS on standard error, marked as this script's."
  (message "emacs_e2e: %s" (apply #'format fmt args)))

(defun e2e-check (cond fmt &rest args)
  "Fail with FMT and ARGS unless COND."
  (unless cond (error "check failed: %s" (apply #'format fmt args))))

(defun e2e-wait (secs what pred)
  "Run the event loop until PRED is non-nil; fail after SECS seconds, naming WHAT.
Process output (the server's messages) and timers are handled meanwhile."
  (let ((deadline (+ (float-time) secs)))
    (while (not (funcall pred))
      (when (> (float-time) deadline)
        (error "timed out after %s s waiting for %s" secs what))
      (accept-process-output nil 0.1))))

(defun e2e-handoff (&rest args)
  "Output of `handoff -C REPO ARGS'."
  (with-temp-buffer
    (apply #'call-process e2e-bin nil t nil "-C" e2e-repo args)
    (buffer-string)))

(defun e2e-hunks ()
  "The Flymake diagnostics of the buffer that Handoff published, in order."
  (with-current-buffer e2e-buffer
    (sort (cl-remove-if-not
           (lambda (d)
             (equal (plist-get (e2e-lsp-diag d) :source) "handoff"))
           (flymake-diagnostics))
          (lambda (a b) (< (flymake-diagnostic-beg a) (flymake-diagnostic-beg b))))))

(defun e2e-lsp-diag (diag)
  "The LSP diagnostic (a plist) behind the Flymake diagnostic DIAG."
  (cdr (assoc 'eglot-lsp-diag (flymake-diagnostic-data diag))))

(defun e2e-pick-code-action (title)
  "Run `eglot-code-actions' at point as the user does, picking TITLE.
Fails, listing what was offered, when no action's title starts with TITLE."
  (let ((offered nil)
        ;; Not a mouse event: Eglot offers the actions with `completing-read'.
        (last-nonmenu-event ?\r))
    (cl-letf (((symbol-function 'completing-read)
               (lambda (_prompt collection &rest _)
                 (setq offered (mapcar #'car collection))
                 (or (cl-find-if (lambda (s) (string-prefix-p title s)) offered)
                     (error "no code action %S among %S" title offered)))))
      (call-interactively #'eglot-code-actions))
    (e2e-say "code actions offered: %S; picked %S" offered title)
    offered))

(defun e2e-line-of (diag)
  "The 1-based line where Flymake diagnostic DIAG starts."
  (with-current-buffer e2e-buffer
    (line-number-at-pos (flymake-diagnostic-beg diag))))

(defun e2e-dump ()
  "Print what the script saw, for a failure's report."
  (ignore-errors
    (with-current-buffer e2e-buffer
      (e2e-say "buffer:\n%s" (buffer-string))))
  (ignore-errors
    (dolist (d (e2e-hunks))
      (e2e-say "diagnostic on line %d: %s" (e2e-line-of d) (flymake-diagnostic-text d))))
  (e2e-say "the server said: %S" (reverse e2e-server-messages))
  (ignore-errors (e2e-say "handoff list --json:\n%s" (e2e-handoff "list" "--json")))
  (ignore-errors
    (let ((server (with-current-buffer e2e-buffer (eglot-current-server))))
      (with-current-buffer (jsonrpc-events-buffer server)
        (e2e-say "JSON-RPC events (last 6000 characters):\n%s"
                 (buffer-substring-no-properties
                  (max (point-min) (- (point-max) 6000)) (point-max)))))))

(defun e2e-flow ()
  "The user's steps; signals an error on any failure."
  (e2e-check (and e2e-bin e2e-repo (member e2e-scenario '("accept" "confirm")))
             "HANDOFF_BIN, REPO and SCENARIO (accept | confirm) must be set")
  ;; Eglot runs one server per major mode per project: Handoff here is *the* server of
  ;; python-mode (see the README's Emacs section for running it beside another one).
  (setq eglot-server-programs `((python-mode . (,e2e-bin "lsp"))))
  (setq eglot-confirm-server-initiated-edits
        (if (equal e2e-scenario "accept") nil 'confirm))

  ;; 1. Open greet.py and connect Eglot, as M-x eglot does.
  (setq e2e-buffer (find-file-noselect (expand-file-name "greet.py" e2e-repo)))
  (set-buffer e2e-buffer)
  (e2e-check (derived-mode-p 'python-mode) "greet.py opened in %s" major-mode)
  (apply #'eglot (eglot--guess-contact))
  (e2e-wait 30 "Eglot to manage greet.py"
            (lambda () (with-current-buffer e2e-buffer
                         (and (bound-and-true-p eglot--managed-mode) (eglot-current-server)))))
  (e2e-say "connected: %s" (jsonrpc-name (eglot-current-server)))
  ;; In an interactive Emacs Flymake starts after the first command; batch mode has
  ;; no command loop, so start it by hand.
  (flymake-start)

  ;; 2. "Delegate TODO to background agent" on the TODO line.
  (goto-char (point-min))
  (forward-line 1)
  (e2e-check (looking-at "    # TODO: greet loudly") "line 2 is not the TODO: %S"
             (buffer-substring (line-beginning-position) (line-end-position)))
  (e2e-pick-code-action "Delegate TODO to background agent")

  ;; 3. The task runs in Docker; when it ends its hunk shows as a Flymake note.
  (e2e-wait 120 "the task's hunk as a Flymake diagnostic" (lambda () (e2e-hunks)))
  (let* ((hunks (e2e-hunks))
         (d (car hunks))
         (lsp (e2e-lsp-diag d))
         (data (plist-get lsp :data))
         (text (flymake-diagnostic-text d)))
    (e2e-say "hunk: line %d, %s: %s" (e2e-line-of d) (flymake-diagnostic-type d) text)
    (e2e-check (= (length hunks) 1) "%d hunks, expected 1" (length hunks))
    (e2e-check (= (e2e-line-of d) 2) "hunk on line %d, expected 2" (e2e-line-of d))
    ;; Severity Hint: a Flymake note.
    (e2e-check (eq (flymake-diagnostic-type d) 'eglot-note) "type %s"
               (flymake-diagnostic-type d))
    ;; The first line (all the Flymake list shows) names the task and the change.
    (e2e-check (string-match-p "Handoff #1 (.*): replaces 2 lines with 1"
                               (car (split-string text "\n")))
               "first line of the diagnostic: %S" text)
    (e2e-check (and (equal (plist-get data :task) 1) (equal (plist-get data :hunk) 0)
                    (eq (plist-get data :conflict) :json-false))
               "diagnostic data: %S" data)

    ;; 4. "Accept change (Handoff #1)" on the hunk. The command answers at once; the
    ;; edit follows as workspace/applyEdit, which Eglot applies (after asking, in
    ;; the confirm scenario).
    (goto-char (flymake-diagnostic-beg d))
    (let ((asked-at (float-time)))
      (e2e-pick-code-action "Accept change (Handoff #1)")
      ;; Without asking it takes a moment. With asking, the test answers after 12 s,
      ;; within the server's 30 s wait for the edit's confirmation.
      (e2e-wait (if (equal e2e-scenario "accept") 10 25) "the buffer to take the change"
                (lambda () (equal (with-current-buffer e2e-buffer (buffer-string))
                                  e2e-expected)))
      (e2e-say "the change is in the buffer after %.1f s" (- (float-time) asked-at))))
  (e2e-check (= e2e-edits-inside-command 0)
             "the server's edit came before the answer to handoff.accept")
  ;; The server recorded the decision: the hunk is gone for good.
  (e2e-wait 15 "the hunk's diagnostic to go" (lambda () (null (e2e-hunks))))
  (let ((warned (cl-find-if (lambda (m) (string-match-p "stays for review\\|refused" m))
                            e2e-server-messages)))
    (e2e-check (not warned) "the server says the change was not applied: %s" warned))

  ;; 5. The server still serves: code actions on the former TODO line answer, and
  ;; offer no second Accept.
  (goto-char (point-min))
  (forward-line 1)
  (let ((actions (eglot-code-actions (point) (point))))
    (e2e-check (not (cl-find-if (lambda (a) (string-prefix-p "Accept change"
                                                             (plist-get a :title)))
                                actions))
               "an Accept is still offered: %S" (mapcar (lambda (a) (plist-get a :title)) actions)))

  ;; 6. Save, as the user would.
  (save-buffer)
  (e2e-say "saved greet.py:\n%s" (buffer-string))
  (let ((server (eglot-current-server)))
    (with-timeout (15 (e2e-say "Eglot's shutdown took longer than 15 s"))
      (eglot-shutdown server))))

(defun e2e-main ()
  "Run the flow; exit 0 on success, 1 on any failure."
  (condition-case err
      (progn
        (e2e-flow)
        (princ (format "emacs_e2e %s: ok\n" e2e-scenario))
        (kill-emacs 0))
    (error
     (e2e-say "FAILED: %s" (error-message-string err))
     (e2e-dump)
     (kill-emacs 1))))

(e2e-main)

;;; flow.el ends here
