import { useI18n } from '../i18n';

export default function VideoPage(_props: { id?: string; tab?: string }) {
  const { t } = useI18n();
  return <div className="page"><p className="empty">{t('common.loading')}</p></div>;
}
